"""The local stand-in of the stack that ``alchemiser invoke`` runs the Lambda handlers on."""
