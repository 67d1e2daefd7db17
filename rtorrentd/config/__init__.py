"""TOML → frozen `Config`, every error naming file, line and rule."""
