"""Local stand-ins for the services cml-action talks to: real HTTP on loopback, requests checked against each
service's published description. Tests point the real SDKs at them through the documented endpoint variables."""
