"""The coding domain, free of I/O: label configs as codes, coders' annotations, agreement, version names."""
