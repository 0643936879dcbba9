"""The cost assistant: questions about AI spend answered by a model that reads our query functions
through tools, as the asking user (tools.py), grounded in what they return (answer.py), or a fixed
summary of the same queries when no model may answer (template.py). Deploys alone: `app` here."""

from tokentra_functions._app import function_app
from tokentra_functions.assistant.routes import router

__all__ = ["app", "router"]

app = function_app(router, title="TokenTRA assistant")
