"""Development tools that never ship to Lambda: the local stand-in of the stack that
``alchemiser invoke`` runs the handlers on, and the deploy build (``make build``)."""
