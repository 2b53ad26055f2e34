"""Patient channels: the SMS line's rules and the website chat's own server."""
