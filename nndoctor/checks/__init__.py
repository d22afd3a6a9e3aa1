"""One module per check id (the module name is the id). Each defines

    def run(ctx: Context, thresholds: Mapping[str, Any]) -> Finding

which measures (through shared probes where another check needs the same pass) and then judges
the measurement against ``thresholds`` from the catalog, as overridden by the user's config.
"""
