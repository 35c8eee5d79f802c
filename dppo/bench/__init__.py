"""`dppo bench`: kernel timings against an eager reference and a roofline."""
