"""Register maps shipped with the Modbus driver (YAML data; a package so the files install with it)."""
