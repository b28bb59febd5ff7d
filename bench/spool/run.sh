#!/bin/sh
# Spool benchmarks: enqueue throughput for 2 MB JPEG-sized images (every
# file and directory fsync'ed, every commit with synchronous=FULL) and the
# size of the queue database per 10,000 items.
#
#   bench/spool/run.sh [CONFIG]      CONFIG: release (default) or debug
#   BENCH_DIR=/path  puts the scratch spool there (default /var/tmp/telestation-bench);
#                    use the disk the station's state_dir lives on.
set -eu
cd "$(dirname "$0")/../.."
config=${1:-release}
dir=${BENCH_DIR:-/var/tmp/telestation-bench}

swift build -c "$config" --product spool-stress >/dev/null
bin=$(swift build -c "$config" --show-bin-path)/spool-stress

fresh() { rm -rf "$dir"; mkdir -p "$dir"; }

echo "## $(date -u +%Y-%m-%dT%H:%MZ) $(uname -srm), $(nproc) cores, $config build"
mkdir -p "$dir"
echo "scratch: $dir on $(df -P "$dir" | awk 'NR==2 {print $1}'), load average: $(cut -d' ' -f1-3 /proc/loadavg)"

# The station's spool is encrypted; the plaintext runs show what encryption costs.
key="$dir.key"
(umask 077; head -c 32 /dev/urandom > "$key")
echo "### 2 MB images with a 40 KB preview, 300 items per run: plaintext, then encrypted (AES-256-GCM)"
for run in 1 2 3; do
    fresh
    "$bin" bench --dir "$dir/spool" --db "$dir/queue.sqlite" --count 300 --size 2000000 --preview 40000
    fresh
    "$bin" bench --dir "$dir/spool" --db "$dir/queue.sqlite" --count 300 --size 2000000 --preview 40000 --key "$key"
done

echo "### database size: 10,000 images with previews (20,000 rows), 1 KB files"
fresh
"$bin" bench --dir "$dir/spool" --db "$dir/queue.sqlite" --count 10000 --size 1000 --preview 200
echo "### same, after every item went through claim, upload URL, offset, uploaded"
fresh
"$bin" bench --dir "$dir/spool" --db "$dir/queue.sqlite" --count 10000 --size 1000 --preview 200 --lifecycle
rm -rf "$dir" "$key"
