"""The ops console: server-rendered pages over the same route functions as the JSON API.

`auth` holds the session cookie, CSRF and origin checks; `forms` turns posted forms into the
API's request models; the routes live in `api/routes/console.py`."""
