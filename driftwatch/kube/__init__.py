"""The one Kubernetes client of DriftWatch (operator and CLI): a small async REST client on aiohttp.

* ``client``      ``Kube``: get, list, server-side apply, create, replace, delete, patch; retries
* ``credentials`` kubeconfig / in-cluster credentials for the CLI (the operator uses kopf's login)
"""
