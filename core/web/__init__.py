"""The web app (FastAPI + Jinja2): review inbox, operations dashboard, audit viewer, JSON API."""
