"""Objects in a GCS or Azure emulator, through the file systems PyIceberg reads with (pyarrow's
for GCS, adlfs for Azure): clients independent of Icefall's. Makes a bucket, puts an object,
lists keys."""
import argparse
import sys

from pyiceberg.io.fsspec import FsspecFileIO
from pyiceberg.io.pyarrow import PyArrowFileIO


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--kind", choices=["gcs", "azure"], required=True)
    parser.add_argument("--property", action="append", default=[], help="KEY=VALUE storage property")
    parser.add_argument("action", choices=["mkdir", "put", "list"])
    parser.add_argument("key", help="bucket-relative key (mkdir: the bucket)")
    args = parser.parse_args()
    props = dict(p.split("=", 1) for p in args.property)
    if args.kind == "gcs":
        fs = PyArrowFileIO(props).fs_by_scheme("gs", "lake")
        if args.action == "mkdir":
            fs.create_dir(args.key)
        elif args.action == "put":
            with fs.open_output_stream(f"lake/{args.key}") as out:
                out.write(sys.stdin.buffer.read())
        else:
            from pyarrow.fs import FileSelector, FileType

            for info in fs.get_file_info(FileSelector(f"lake/{args.key}", recursive=True, allow_not_found=True)):
                if info.type == FileType.File:
                    print(info.path.removeprefix("lake/"))
        return
    fs = FsspecFileIO(props).get_fs("abfs", "devstoreaccount1.dfs.core.windows.net")
    if args.action == "mkdir":
        fs.mkdir(args.key)
    elif args.action == "put":
        fs.pipe(f"lake/{args.key}", sys.stdin.buffer.read())
    else:
        for path in fs.find(f"lake/{args.key}"):
            print(path.removeprefix("lake/"))


if __name__ == "__main__":
    main()
