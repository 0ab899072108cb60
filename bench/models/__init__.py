"""Model builders: seed models, and loaders for saved Keras and .tflite files."""
