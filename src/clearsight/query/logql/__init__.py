"""LogQL: for now the log-query subset (stream selector and line filters), see parser.py."""
