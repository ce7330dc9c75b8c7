"""UNLOAD as Redshift runs it: grammar, role chain, and the files and manifest it writes."""
