"""How a sync's table reads are run: in this process (the default) or on a Ray cluster.

The engine always drives a run from one process (the driver): it lists and describes tables,
writes the destination and commits, so single-writer destinations (DuckDB) and the cursor's
"commit with the data" keep working. An executor decides where the reads run: `ray` sends
each table's read (the statements, the downloads and the decoding into Arrow) to a Ray
worker and streams the batches back to the driver.
"""
