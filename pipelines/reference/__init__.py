"""Reference data and identifiers: administrative units (2025 and legacy), CCCD / tax code / phone rules,
personal-data scanning. Everything here comes from installed packages or law, never from the network."""
