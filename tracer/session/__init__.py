"""Sessions on disk: the schema every backend writes, the writer capture uses, the reader analysis uses.

``from tracer.session.reader import load_session`` (or ``tracer.load_session``)
loads one; ``schema`` is the contract between capture and analysis.
"""
