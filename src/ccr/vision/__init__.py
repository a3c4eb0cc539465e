"""Media loading, frame sampling, visual features and the feature store."""
