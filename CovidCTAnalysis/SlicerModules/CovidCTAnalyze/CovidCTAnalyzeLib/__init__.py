"""Qt-free logic of the Analyze module: parameters, the background analysis and its results, dependencies."""
