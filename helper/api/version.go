package api

// Version is the product version, set at link time by the Makefile.
var Version = "dev"
