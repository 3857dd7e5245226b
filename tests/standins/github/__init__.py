"""A GitHub stand-in: REST checked against GitHub's OpenAPI description, GraphQL against its schema."""
