"""The GRU that training builds computes what `keras.layers.GRU` computes, and shares its weight files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")
keras = pytest.importorskip("keras")

from textgen.architectures import unrolled_gru  # noqa: E402

UNITS, FEATURES = 6, 4


def _pair(length: int | None) -> tuple[keras.Model, keras.Model]:
    """The same model twice, with Keras' GRU and with the unrolled one, sharing one set of weights."""
    models = []
    for layer_class in (keras.layers.GRU, unrolled_gru.GRU):
        inputs = keras.Input((length, FEATURES))
        state = keras.Input((UNITS,))
        outputs, final = layer_class(UNITS, return_sequences=True, return_state=True, name="rnn_0")(
            inputs, initial_state=[state]
        )
        models.append(keras.Model([inputs, state], [outputs, final]))
    keras_model, unrolled_model = models
    rng = np.random.default_rng(0)
    unrolled_model.set_weights(
        [rng.normal(size=w.shape).astype("float32") for w in unrolled_model.get_weights()]
    )
    keras_model.set_weights(unrolled_model.get_weights())
    return keras_model, unrolled_model


def _outputs_and_gradients(model: keras.Model, x: np.ndarray, h: np.ndarray) -> list[np.ndarray]:
    with tf.GradientTape() as tape:
        outputs, final = model([tf.constant(x), tf.constant(h)])
        loss = tf.reduce_sum(tf.sin(outputs)) + tf.reduce_sum(final * final)
    gradients = tape.gradient(loss, model.trainable_weights)
    return [outputs.numpy(), final.numpy(), *(g.numpy() for g in gradients)]


@pytest.mark.parametrize("length", [7, unrolled_gru.MAX_UNROLLED_POSITIONS + 3, None])
def test_outputs_state_and_gradients_are_keras_gru_s(length: int | None) -> None:
    """Unrolled (a window of 7, and a model built for any length given 9), and on Keras' loop where the
    window is too long to unroll."""
    keras_model, unrolled_model = _pair(length)
    rng = np.random.default_rng(1)
    x = rng.normal(size=(3, length or 9, FEATURES)).astype("float32")
    h = rng.normal(size=(3, UNITS)).astype("float32")
    expected = _outputs_and_gradients(keras_model, x, h)
    got = _outputs_and_gradients(unrolled_model, x, h)
    for name, a, b in zip(
        ["outputs", "final state", "kernel", "recurrent kernel", "bias"], got, expected, strict=True
    ):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5, err_msg=name)
    # Something to compare: the gradients are not all zero.
    assert min(float(np.abs(g).max()) for g in got[2:]) > 1e-3


def test_a_window_unrolls_only_when_its_length_is_known_and_short() -> None:
    layer = unrolled_gru.GRU(UNITS)
    layer.build((None, 7, FEATURES))
    assert layer._unrollable(keras.KerasTensor((2, 7, FEATURES)), None)
    assert not layer._unrollable(keras.KerasTensor((2, None, FEATURES)), None)
    assert not layer._unrollable(
        keras.KerasTensor((2, unrolled_gru.MAX_UNROLLED_POSITIONS + 1, FEATURES)), None
    )
    assert not layer._unrollable(keras.KerasTensor((2, 7, FEATURES)), keras.KerasTensor((2, 7), dtype="bool"))


def test_weight_files_load_either_way(tmp_path: Path) -> None:
    """Bundles trained before this layer load into it, and its weights load into a plain Keras GRU."""
    keras_model, unrolled_model = _pair(5)
    keras_model.set_weights([np.zeros_like(w) for w in keras_model.get_weights()])
    unrolled_model.save_weights(tmp_path / "unrolled.weights.h5")
    keras_model.load_weights(tmp_path / "unrolled.weights.h5")
    for a, b in zip(keras_model.get_weights(), unrolled_model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    _, fresh_unrolled = _pair(5)
    fresh_unrolled.set_weights([np.zeros_like(w) for w in fresh_unrolled.get_weights()])
    keras_model.save_weights(tmp_path / "keras.weights.h5")
    fresh_unrolled.load_weights(tmp_path / "keras.weights.h5")
    for a, b in zip(fresh_unrolled.get_weights(), keras_model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_set_unrolling_keeps_a_model_on_keras_loop() -> None:
    _, unrolled_model = _pair(7)
    layer = unrolled_model.get_layer("rnn_0")
    window = keras.KerasTensor((2, 7, FEATURES))
    assert layer._unrollable(window, None)
    unrolled_gru.set_unrolling(unrolled_model, False)
    assert not layer._unrollable(window, None)


@pytest.mark.parametrize(("epochs", "unrolled"), [(1, False), (60, True)])
def test_a_run_unrolls_only_when_it_plans_enough_steps_to_repay_the_larger_graph(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, epochs: int, unrolled: bool
) -> None:
    import textgen.training
    from textgen.spec import ModelSpec, TrainConfig

    decisions: list[bool] = []
    real = textgen.training.set_unrolling
    monkeypatch.setattr(
        textgen.training,
        "set_unrolling",
        lambda model, enabled: (decisions.append(enabled), real(model, enabled)),
    )
    # 5 steps an epoch: 60 epochs plan 300 steps (at least MIN_STEPS_TO_UNROLL), 1 epoch plans 5. The
    # budget cuts the long run short; 2 s, as building the model can take 1 s on a loaded machine.
    config = TrainConfig(batch_size=4, epochs=epochs, steps_per_epoch=5, val_fraction=0.0, time_budget=2.0)
    textgen.training.train_model(
        ["the quick brown fox jumps over the lazy dog"] * 40,
        tmp_path / "model",
        spec=ModelSpec(arch="gru", units=8, embedding=4, seq_len=8),
        config=config,
        precision="float32",
    )
    assert unrolled_gru.MIN_STEPS_TO_UNROLL <= 300
    assert decisions == [unrolled]
