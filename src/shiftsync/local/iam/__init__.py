"""IAM as AWS evaluates it, patched into moto: policies, trust, conditions, ExternalId."""
