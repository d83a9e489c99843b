"""The app's routes, one module per area: auth, inbox, ops, audit, api."""
