"""Distribution-API client: session, auth, credentials, blobs, manifests, uploads."""
