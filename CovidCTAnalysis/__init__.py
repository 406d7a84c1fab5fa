"""CovidCTAnalysis: COVID-19 chest-CT analysis (lungs, lesions, classifiers, explanations).

The package imports neither Qt nor Slicer; the command line (`covidct`) and the Slicer
modules are thin front ends over it.
"""

__version__ = "0.1.0"
