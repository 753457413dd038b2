"""redwall: the data lakehouse of a street big-data centre (街道大数据中心)."""

__version__ = "0.1.0"
