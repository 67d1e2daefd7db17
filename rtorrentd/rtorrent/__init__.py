"""The edge to rtorrent: transports, connecting by URL, the client."""
