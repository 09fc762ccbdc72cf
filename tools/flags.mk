# SPDX-License-Identifier: GPL-2.0
# What every tool's Makefile builds with: the output directory (O=DIR; the
# top-level `make tools` gives build/tools/...), the compiler, and the
# warnings our C is held to.
O ?= .
CC ?= gcc
CFLAGS ?= -O2 -g
WARN := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
	-Wformat=2 -Wno-format-nonliteral
COMPILE = $(CC) -std=gnu11 $(WARN) $(CFLAGS)
