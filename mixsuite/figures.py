"""matplotlib, set up once for every figure mixsuite draws: imported only when a figure is drawn (listing tasks or
comparing records without --plot never imports it), on the Agg backend (files, no display)."""


def pyplot():
    """matplotlib.pyplot on the Agg backend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt
