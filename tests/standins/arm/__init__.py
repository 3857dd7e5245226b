"""Azure Resource Manager, Microsoft identity platform and the Azure IMDS, over TLS on loopback."""
