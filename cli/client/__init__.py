"""The command-line client for people: submit a file, follow the job, read its results.

It talks to the API over HTTP only (`http`), never imports the producer or the worker, and
shares nothing with them but the entity declarations in `claimpay.entities`.
"""
