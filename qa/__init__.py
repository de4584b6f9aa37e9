"""docqa: ask questions about your own documents and get answers that cite their sources.

The pipeline runs one way: corpus → chunks → embeddings → index → passages → answer.
Each stage is one module; the records that flow between them are in `qa.types`.
"""

__version__ = "0.1.0"
