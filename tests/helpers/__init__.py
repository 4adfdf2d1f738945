"""Code the tests share: tiny configs, the command line, a stand-in feature extractor, tracked
sweeps."""
