"""One module per outside service; async methods, pydantic models and our own errors out."""
