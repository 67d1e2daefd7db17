"""One poll, the daemon loop, systemd, logs, status lines, reports."""
