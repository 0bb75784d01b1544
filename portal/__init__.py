"""The registry's own web pages: the catalogue, packages and versions, getting a cluster onto the registry, uploads
from the browser and their jobs. Imports ``operations`` and the layers below; only ``registry_site`` imports it."""
