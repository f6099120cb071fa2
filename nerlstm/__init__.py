"""nerlstm: named-entity recognition with a character+word BiLSTM encoder and a CRF decoder."""

__version__ = "0.1.0"
