/* retain.h - checkpoint retention for the GPT-2 trainer's output folder.
 *
 * A run with --ckpt-every writes one folder ckpt_<step> per checkpoint;
 * without retention they pile up (hundreds of megabytes in a long run).
 * gpt2_ckpt_retain keeps the newest `keep` complete checkpoints (those
 * with trainer.txt, which is written last) and always the one `latest`
 * names, which is what --resume needs. Leftovers of interrupted writes
 * (folders older than the newest complete checkpoint that never got their
 * trainer.txt) go too. Only the files the trainer writes, and temporary
 * files of writers that no longer run, are deleted: a folder holding
 * anything else is left in place. */
#ifndef DESCENT_GPT2_RETAIN_H
#define DESCENT_GPT2_RETAIN_H

#define GPT2_KEEP_DEFAULT 3

/* keep <= 0 keeps every checkpoint. Returns the number of folders
 * removed, -1 if out_dir cannot be read. */
int gpt2_ckpt_retain(const char *out_dir, int keep);

#endif
