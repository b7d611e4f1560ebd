"""Core services: configuration, bindings, personalities, functions, resources, generation."""
