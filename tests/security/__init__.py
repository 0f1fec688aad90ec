"""Security and bad-input tests: secrets, loopback defaults, write endpoints, hostile input."""
