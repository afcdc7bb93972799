"""One module per family of chat commands; each handler is `async (services, request) -> Reply`."""
