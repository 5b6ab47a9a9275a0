"""Real scans and photos: normalise them MNIST-style, split numbers into digits, read folders,
and draw synthetic ones from real UCI handwriting."""
