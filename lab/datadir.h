/* datadir.h - where the `descent` command finds the files it ships with (the
 * digits set, the GPT-2 vocabulary, the golden files), in a clone and once
 * installed.
 *
 * `cmake --install` copies them to PREFIX/share/descent (DATADIR/descent). A
 * file is looked for, first found wins, in:
 *   1. $DESCENT_DATADIR/<installed>         (an explicit override)
 *   2. <bindir of this executable>/../share/descent/<installed>
 *      (the relative path from the install's bindir to its datadir, so an
 *      install moved or made with `cmake --install --prefix` still works)
 *   3. <in_tree>, relative to the working directory (a clone's root)
 *   4. <the source tree this binary was built from>/<in_tree>
 *   5. <DATADIR given at configure time>/descent/<installed>
 * so a build run from the clone uses the clone's files, and an installed
 * command run anywhere uses its own share/descent. */
#ifndef DESCENT_DATADIR_H
#define DESCENT_DATADIR_H

#include <stddef.h>

/* Writes into buf (n bytes) the path of the first existing file among the
 * places above and returns 0. If none exists, writes the in-tree path (for
 * the caller's error message) and returns -1. `installed` is the name under
 * share/descent (e.g. "gpt2/vocab.bpe"), `in_tree` the path in the source
 * tree (e.g. "tests/data/gpt2_vocab.bpe"). */
int lab_data_path(const char *installed, const char *in_tree, char *buf, size_t n);

/* The installed data folder this command uses (1, 2 or 5 above, the first
 * that exists), or NULL when only the source tree can serve. For
 * `descent version`, so a user can see which copy is in use. */
const char *lab_data_dir(void);

#endif
