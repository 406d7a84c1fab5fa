"""Qt-free logic of the classifiers module: one logic class per seed system."""
