"""python_exec: the model writes Python; Lockgate checks it by AST and runs it where it can do no harm."""
