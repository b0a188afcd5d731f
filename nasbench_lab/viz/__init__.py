"""Pure figure builders: data in, plotly ``go.Figure`` out (no widgets, no state)."""
