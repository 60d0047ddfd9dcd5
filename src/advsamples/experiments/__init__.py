"""The computations behind the chapters: one module per chapter, so that notebooks stay thin.

Each module holds the loops over models, the curves, matrices and samples a chapter shows, and
the figures specific to it; the notebook only validates its parameters, calls these functions and
records their results.
"""
