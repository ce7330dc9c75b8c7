"""AWS access: the assumed-role session, policy documents, the preflight check."""
