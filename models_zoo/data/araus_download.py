"""``soundaq data download araus --to DIR``: ARAUS's own download, pinned, resumable, unpacked and split.

The recipe is ARAUS's ``code/download.py`` (repository ``ntudsp/araus-dataset-baseline-models``): the
archives and the 62 one-minute recordings of its ``code/manifest.csv`` (``figures.zip`` left out:
no data), each pinned by the manifest's checksum. That checksum is BLAKE2b-512
(``hashlib.blake2b(...).hexdigest()``, ARAUS's ``download_file``), 128 hex digits like a SHA-512 but
not one; it is checked through :func:`pooch.file_hash` (``blake2b``). Files come through
:func:`soundaq.models_zoo.data.download.fetch_files` (verified before they are named, resumable,
proxies from the environment), then:

1. each archive is unpacked into ``DIR`` (``data/``, ``maskers/``, ``maskersv2/``, ``binaural/``, ...):
   into a hidden folder first, whose top-level entries are then moved into place, so a failing archive
   leaves nothing half-unpacked; a marker ``archives/.<name>.unpacked`` makes a rerun skip it;
2. the v2 maskers (``maskersv2/*.wav``) join ``maskers/``;
3. every 60-s recording (``binaural/*.wav``, then moved to ``soundscapes_raw/``, and
   ``soundscapes_raw/*.wav``) is read at 44.1 kHz (``librosa.load(sr=44100, mono=False)``, as ARAUS's
   ``split_usotw_track``) and cut into ``soundscapes/<stem>_44100_1.wav`` (the first 30 s) and
   ``_44100_2.wav`` (the rest), 16-bit WAV, each written atomically. ARAUS pinned librosa 0.9.1, whose
   default resampler was ``kaiser_best`` (resampy); librosa 0.11's is ``soxr_hq``, so the halves differ
   from ARAUS's by the resampler's error (their levels, and so ``gain_s``, are unchanged).
"""
from __future__ import annotations

import os
import shutil
import zipfile
from dataclasses import dataclass
from pathlib import Path

from soundaq.base.fileio import atomic_path, output_folder
from soundaq.models_zoo.data.download import DownloadError, FetchResult, PinnedFile, fetch_files

#: ARAUS's manifest: (url, file name, BLAKE2b-512) of each archive (code/manifest.csv).
ARCHIVES: tuple[tuple[str, str, str], ...] = (
    ("https://zenodo.org/records/10106181/files/binaural.zip?download=1",
     "binaural.zip", "b9ea99b1e66ef8c26b9b21953d803bebe6cdbe8926fbf7b582e5c11fdab7ccbb"
     "7b782c79eaa196a2b2b46412a4edb75796830e0549470bfd7ef525a29aa295cf"),
    ("https://researchdata.ntu.edu.sg/api/access/datafile/89458?gbrecs=true",
     "maskers.zip", "34f34a8e1264ca2aae0788c1101de5c1d9ff9af804cb4aa5388a161fd916773b"
     "5b4d165c5d546e516ab035b5b5499d015cc00f77ff8fc31107999e08e44d5cc1"),
    ("https://researchdata.ntu.edu.sg/api/access/datafile/99922?gbrecs=true",
     "data.zip", "94b4a166bc3b042084dc04d8771540b10e494dcbc5bc7e44fb0e3b19bb956d06"
     "82d8b3fcfcffdd778e4f7c888d80c817db29fd2ef58722fbcc7b01d4684f8cb8"),
    ("https://researchdata.ntu.edu.sg/api/access/datafile/89459?gbrecs=true",
     "soundscapes.zip", "e462e963d28835f25bb40a2a0c01f1c33e654367f1a7dc073becb352bb388d3c"
     "9de68c130dcb4d204b9809411ec42558b379a8607ed6a34efa752a3012e534a2"),
    ("https://researchdata.ntu.edu.sg/api/access/datafile/114619?gbrecs=true",
     "datav2.zip", "472b59bd56b5fe22cabd80a88c02d991d915e322327367203a43df5b97fc1a9c"
     "81709d37abba067fdcdd1c875a04acc2f69dfed9618967b013a3b3f60e8ece35"),
    ("https://researchdata.ntu.edu.sg/api/access/datafile/114620?gbrecs=true",
     "maskersv2.zip", "215e0ff2f5e6fc2ad638aabb085139aba6de8058ce6a2e81ea473f3d24f896ce"
     "71399901e6132154ca049e2b9b1da85515a5297ca5bbb65f9fb8f8537e7e85f7"),
)
#: The 62 one-minute recordings S0001-S0062 (``soundscapes_raw/S<nnnn>_1min_SQobold_bin.wav``): the
#: NTU data-repository file id and the BLAKE2b-512 of each, in order (code/manifest.csv).
RAW_RECORDINGS: tuple[tuple[int, str], ...] = (
    (110292, "79f5f27cffd9e52d9d7bdbee1c84b8c4e941826ce095a85b91c87357bee64e11"
     "bd6db699301d4a01de1ce7fedcbb602a9abff3fe83854678be1b81e62e4bd846"),
    (110275, "d0b11875fc16fafc60dd6a28a74ebc680dad071ec229a27162169f48b421b0d0"
     "7eb770a7624cf1f132edf8a36051017797d82d66425cba5fe284d4a5521a7b17"),
    (110157, "826d7db6e65895abe10787f5a94f0017dfaf0afd0452a8640b8343d288c13457"
     "076ec4b5e513bc4202ab03aca1718bec22cf9460bedc662efbe37025460ed51a"),
    (110347, "aea3cd090051115d31f4a806e4b287d8390f056c5744defb282c00b982401e63"
     "ca5f360a8a9afc38cc43f8d347e23298390f471bbd5025dc98e96527a5d69465"),
    (110199, "4352f9decc921d087dc042eda585bfbd2f94126b7e5513d4f583a72e4c8fbedd"
     "d3941ded41f038e834d96f2242f7c61b5de324aa3a373ea5f72a34c0afb64ab5"),
    (110288, "8640664cb7bca214b273141444d6e40619e47bb19ec5dce3e6fe10ef0dabc6d8"
     "3526d511649a3b09ca8fc1ad62ccb011ac585ceb97db996228016c92b8943dad"),
    (110160, "0661c2f509dafb2cf310a722c3f0223ee9ead8aaf08509ce9a843b417aa65149"
     "54cffd30f2f67d5c005390bd246ab15c53ba19fdc85259d33daa90ff0fd86d17"),
    (110289, "6ffd668d3f45beae74f90f60c610b86e14dce30b065db8b27f333deca17a7285"
     "8adae0a0cff9f6ef384c0308ae02c7f71898ccd675a9f5da477d1107308ca328"),
    (110318, "8fc88def11aa8b5e6d6985674d0e1100bf9759327db656b7f2c7e30386ac16fc"
     "15a858e06c2b4513b43a9994f6bf72cfb22679ebe1d14c9f53b043d05c393155"),
    (110161, "2535eaefef0df646d3316a409f0557163f0ecaacd10ca4f8807c4bb0eb113598"
     "0bcead6903b6920a9d7e1fbcbf9e4d439af608579595a3332c088485d848066a"),
    (110339, "b35ffa9c60c72a3886a6d36849eccafa4073c2b318b217d9902bf2b14dada084"
     "ca86e0493eef3a05dfc8b341e5035a5d71f2febc4fae7a3a696062e054567704"),
    (110382, "3183d99f5ee847046ae7349234105be06142674fc42cb0b208dcd019ee818182"
     "72b9f573751daa1d1f53626dcf7e9850ec5961862a1a67b0218b1d189c15542a"),
    (110188, "147988076fbc3082a61a369696db909f417539fbd49e9e90f5d650fd99d50011"
     "f58acb82ee6d94c39501b6ed7bd6f6f995751e7bbbe4074364f1887aecab0c9c"),
    (110257, "6094640abd0c9e87d16ba4bde0febc67bd62af9e18f433014edd5c8cd727e5af"
     "3d879594869fde63d5d2d0f4e3d76af3e6219c2e4eb6a28f68baeaee3062639c"),
    (110268, "46bbe68683b89cf53028e6dfda54a610e069055ad10bc0aec8fa9be862ebb4dd"
     "2ab3ab4209ecdd7b10b6e5532e562ae4c291c0310bc2aae5aee7220f8ba4f111"),
    (110362, "156f2b0012f7763588fe868b871d2efd5833faf46cf4f77f0bfee5ec21657e1c"
     "1bddba16c160f93460cecdb258037c5590a24ed0500ce21eb91881c7979da1be"),
    (110317, "ce1e34b6f43ecb6ec9984715bfe3e1673ca657df56b23492089a3839b20a4670"
     "57c2b9e33acfd9362d548d81846cd0cf736c8e611163f88a4a9a641f0abe2385"),
    (110302, "5d671ea157ffa794059292dbe268f6b807e179b8cbb0dfc3441f3c0e5905d0d5"
     "379ca569bdc987ada7b1fda0d9b212050eec28757b2ac67b9507116ff4a02a66"),
    (110327, "5db818571604953a99885c238fd071aad49a5b710d6d06bb7f1327aff7c4629b"
     "b9b5f4ecd1d4dff643fb46c3240ba1e63a71be9c75c0ed57fd65f3a67e1d2805"),
    (110372, "e7e3a24335867857532df30e2a5630bade55ee4ca6bd4f2215f4d13e7155dde8"
     "0fa260a0124a1d408f9344c62f1ccf903626854ab0a7a262af7bc632b8dc584f"),
    (110147, "1aa39e66987a5518371acff0240f130b5c98de66933d0007d62b05e94d9023be"
     "4319ad5593ab846cad090a9ab5d6a667349bd1d34e6de901b396330dae0a190b"),
    (110336, "073060ceb276c7abce3b0e44dd88c49e46160900da70f3c8dec173b363feb4e6"
     "83804318e791157e944d9a0cc65f4d6b5dd410ee5d62c26796814d50daf1dda8"),
    (110294, "4ba7b440e8e610e2e403cad5f1551811441e7286d50c3c5eddeb2550d29f2ec8"
     "80faacf177cc34e2aea8d8568ff0c6088fd85df72c72f712da59db584fa45c50"),
    (110334, "b53fab5ffb20fb7206e1289bd1774432e828aeca82b9673d78340bd0eb401277"
     "ef902dceca20f5387359f3198000ebaa50855633e4bdaa7c3b576c1f8e71c28f"),
    (110226, "37b76a16e6baf726c621e6e953458c1f74a550f66ef3d48ac191bc076472c816"
     "988325fe8b72806a303c2cc0a102ea0470ad9f661a8599baccb2a074d31e1522"),
    (110338, "5fae4876ce08509563d9849ade10574e876988abeddbc8f3c5bebf0c3260dd8a"
     "4e4e195c3c8be0318f6a8508ce8ee6ddf83109d3107399e961c733c90f3bb424"),
    (110330, "18c3e98a04c789618a7dbe9466b83404fa11378b79e7198a52d3813d081762d8"
     "a16c3805d1b1318ebd7b01131b34ab86ed7e2c8faf0b2d6e891cbd6fc8fc1755"),
    (110192, "c9b085244e6a1581e88f11a47fc7be781742f87942440067a3817872f0da52c4"
     "76add28ff571f6df7d719f171d2bf1c8958c62561b41be84784317d2162fc3c3"),
    (110351, "b3d34b8ce826e21b9e3a6a3b0f6d0981a20bd5963eebd1ebc9cf43ef3955d20b"
     "7a02584f4fe8facf746059c5d15508c28c589c6dc5409400ea28c43f7461454f"),
    (110309, "17d6de4d08a60327a7190e4da71ca072d2a05989b14f68620c2f3cfb6a9612bb"
     "a994531749e71067ee61477b5eaaad1e49d9d4327c1f4903371428e62a48858a"),
    (110193, "3adef81a4ec2620b0bf59c791d79ec1e24e8e9738ac0b16150ae66aa9b0cdaf3"
     "18ae92475484316b9980c1bd89c55565cc06da2001f0d844717a3dce469bafa3"),
    (110358, "6c2156246166bf63d76ac8641179683842551bff316228474fbe0eff7c3add41"
     "fda1b64180379fc2443e08237702530d549049f24229c9c276b5502550aa4f13"),
    (110204, "919602f6d2c76175eee8272a6d6006aab455ac61ff1e6e1dd3c7687f7ad7fa7c"
     "b0af7f62423d969655400555b51cf4c16d820ee50406051a92c8261933f16cab"),
    (110228, "9cfc09d85ee192c4970c0e0c2838ef577cc1f7fde1be4409e83f1e9be725b18a"
     "2aa2ef6817c446f667033ecf428c8fae72a935a558727d99965f198e585572e9"),
    (110168, "30c382b68ac420db77fcf9a65ec4dda3ed3cb3d94bcd7b659562009b2964a648"
     "4a72c90330f197d605215f4868d89234e82ee27842f27cd67cc25b494198e6a9"),
    (110252, "10786586f5a45aedb00ef0679b8c206ec7f79f16098e08711bdc0e19bba995ce"
     "93dbfdf4189136d6aee3dff8725eb930b4d65bc5ebeae8e9e45b224cebe6852d"),
    (110213, "725fec778eb5cd380f3c3e54ba89e9c4567884411c9e5c4353dfbe0075e4b0c8"
     "15d8802463a960e96602273a69e20bd6cc6f45d52530caeacfcbf6203be6f696"),
    (110276, "2da7d8db4e8564a58043a6a88b39ab81ff3726c86bc05b692d540440555f4e0e"
     "d4c68d0aff0e2894e8313204b11a58388a34967c5bd63d717b851233db024a9f"),
    (110253, "09d5fe740744e46a68942c03b207c8e9013c7ea911632810c2454124c878c403"
     "415399ce0cd5fb28cb2567cc11ff49c4131add4d46ae03d2fc4dd72b72ce570e"),
    (110314, "81407cd2d5239f7b97c045ff45a7248f596a4f6b27370260dbbff9bd895f6e40"
     "9972ea413350e3c6720099b08facc14cb6e79aa5d87c8040347161fd86f7d310"),
    (110251, "bafa1ad1170fd30c14324e4a784c392b94d34aed868099766761323330db3a45"
     "ba3967a8aabd81cf7fb1b946ab168b3b56d6ad4a04960eafdfa4d35b64d235b7"),
    (110232, "97630b8fc4821b94810d562f9d0aa70a1c1339d9a1654aaf7f8248c26ade77c2"
     "4737eadacdcf3835863a93bb1d9de35c518bf347890b4231186e5c0a862b5cbc"),
    (110163, "018db6b869e24f8128fbf951dc67b1effcafd9e627e020d9186cb856ff63eef7"
     "7528325e10b195f560c5f1456b667ecef00e99677691acfb6e0ca247c1eb6c34"),
    (110381, "a879b2978292020ec555d1351b1765f9e1e95f23355e274317b9f51c49697944"
     "3c406e36085ef562653e5012074094e38e1c801f15fb979c1a6a0f1e7ea0d4c8"),
    (110324, "af611f1d2f33ef76223d0fee322d6b0236f9a02a024e21ddf3e1c676b0a1181f"
     "01e2179c964328064e430f9d053288876d48578138c90d2ba605dea6962c5d26"),
    (110176, "11aa86040b92704d84248f4294a82c61d43ac572bea5bf0cbe491b37974ac723"
     "d19941a15c63e2104c878ed722f6a63901d875b6b40116b54ad2ca706369a0e9"),
    (110284, "73ce72b6a860c545efe76e6c290d182d6a3eece52510726435d84451baf899ea"
     "4ae9e8a72018841af5fafd53a096675e5c7601bc2a0056dde170ff14fefa6111"),
    (110321, "a437a84dc31427cba66260ad50da162bad53480ada784e4f28bab62928c825a2"
     "6ce5b624af98ca64c765c5d0911709d27551e8787288bbcc590deea372fd3cf6"),
    (110283, "8e8cb3eae452c37dafc65646b62a71b3a7f4578876cde9cebb227d23438e839f"
     "f10fb454d170f131517bb0de6912f90ff14e64f22717539bd890589f1c0fa5a0"),
    (110206, "d36f499e81564415fe8d01af5e71f8773c02347f342a81ac858b906b9280f3fd"
     "45b44faf79e098c8a39b76ef878b69229f142c1a5ea77e9dd5c69ece76accc1e"),
    (110246, "008c9be85f7498e3989506526548e2a5f5bddbfab9555143ee6894ad071f4c39"
     "2a791d5b44000a813db657342dd57b68931ce4dc65eafb1045419c96cbbaf556"),
    (110305, "a590f5c4da018dab1d0b271c4b9673f2d548158b918d27098124f85f044973f5"
     "1f14c17fa933991a6cac9ae8c07f9357e519d823a4db512dd40f8324e59dddad"),
    (110224, "9b41edcab4bd6a7716cd7df5e71dfafb75a24a2e7f4a7e9aaa2ca3c3d1295127"
     "4257a3be3cc4eb69d2b47158273c43f0d28187d8a9a61d11b2ff51839277d9f6"),
    (110230, "dd38edbc3c90e2c7d6510d8759f7005a708582440d7372a4566dd56c52dacedd"
     "0c563497b58df7eff8fadf259078c5c92cc84ecd6509c72f56c08ae397a915d5"),
    (110350, "a398ab33e4f45baa7e76a8e6aea08deef040e44880248fbb603f661f52257e49"
     "9116f4c314748ac8f61b3ec89c3ceda623ee97538d6df802e51ca2dea6e50c66"),
    (110352, "53a58354cb0e719d78bf9d58b2e6c22e10b58c5a5354f1d84e07226383c1c888"
     "ca28f65aff569cfe2634437382f4b51271983f81a6c44bd0e9fceccfed74f427"),
    (110290, "df3889d1667dd294b5d9e7c11fad9fb1f13127a5e23c33d0f873013ea8255fdc"
     "79270166eb178b76361940821f2588139636a93f5e236464779b423adee759f5"),
    (110366, "a636649ad07bd8cc2a0602acf725cea46989fc5134cc3ef5dd3a4cf75e838b8b"
     "2f67f8f3947ddfe51662702b2bbdd38512bfddf7062a5fab69dd91e8791f9839"),
    (110315, "e4961e44ef0060964aa1c9ae64e0c36530d5de659684301905fc8fa77c6c9073"
     "c1a2760e3ec9a64fc8cfde568ca5867c4474039b722634467b7b6c17e707be1e"),
    (110266, "9011ee4d9c5bc47e8dbdea110c67df36c9e6ace858b70f0af16419fcc1077fa4"
     "8674aa95f6b49fd371958ab8ad51d8dded1e2800dd44e625ded4204cbe8a2ef9"),
    (110234, "370d5e65754f46afec2407b84caf39629af2b9aa07af2a40e3dd4f86aeba68dc"
     "53793ff7308fd338625c8e19bbec1692eedfbe83e3269f97e13d4f28adb69e73"),
    (110380, "030ad458187db942472beea6338ec977701deea640943616bfaf8ec04c844c84"
     "978968a9dfa6d53a593efd58e2009233d5bd6f49a19b70324ec8ddac59bea1d2"),
)
NTU_FILES = "https://researchdata.ntu.edu.sg/api/access/datafile/"
ARCHIVE_DIR, RAW_DIR = "archives", "soundscapes_raw"
SPLIT_RATE, HALF_SECONDS = 44100, 30


def raw_name(index: int) -> str:
    """File name of recording ``index`` (0-based) of :data:`RAW_RECORDINGS`."""
    return f"S{index + 1:04d}_1min_SQobold_bin.wav"


@dataclass(frozen=True)
class Item:
    """One file of the download: where it comes from by default and where it goes."""

    base: str          # the origin's folder URL
    spec: PinnedFile   # release_path: the name on the origin; name: the name here and in a flat mirror
    folder: str        # sub-folder of DIR it is stored in


def manifest() -> list[Item]:
    """Every file of ARAUS's download, from its manifest (archives first, then the recordings)."""
    items = []
    for url, name, digest in ARCHIVES:
        path = url.split("?")[0]
        base, _, remote = path.rpartition("/")
        items.append(Item(base + "/", PinnedFile(name, remote, None, f"blake2b:{digest}"), ARCHIVE_DIR))
    for i, (file_id, digest) in enumerate(RAW_RECORDINGS):
        items.append(Item(NTU_FILES, PinnedFile(raw_name(i), str(file_id), None, f"blake2b:{digest}"), RAW_DIR))
    return items


def _unpack(archive: Path, root: Path) -> None:
    """Unpack ``archive`` into ``root`` through a hidden folder (nothing half-unpacked on failure).

    Raises:
        DownloadError: an unreadable archive, or a member that would land outside ``root`` (one line).
    """
    marker = archive.parent / f".{archive.name}.unpacked"
    if marker.is_file():
        return
    staging = root / f".unpack-{archive.stem}"
    shutil.rmtree(staging, ignore_errors=True)
    try:
        with zipfile.ZipFile(archive) as zf:
            for member in zf.namelist():
                if member.startswith(("/", "\\")) or ".." in Path(member).parts:
                    raise DownloadError(f"{archive}: member {member!r} would land outside {root}; nothing unpacked; "
                                        "fix: use ARAUS's own archive")
            zf.extractall(staging)
    except (zipfile.BadZipFile, OSError) as err:
        shutil.rmtree(staging, ignore_errors=True)
        raise DownloadError(f"{archive}: cannot be unpacked ({str(err).splitlines()[0]}); nothing unpacked; fix: "
                            "delete it and run the same command again") from None
    _merge(staging, root)
    shutil.rmtree(staging, ignore_errors=True)
    marker.write_text("ok\n")


def _merge(src: Path, dest: Path) -> None:
    """Move the entries of ``src`` into ``dest``, merging folders and replacing files."""
    dest.mkdir(parents=True, exist_ok=True)
    for entry in sorted(src.iterdir()):
        target = dest / entry.name
        if entry.is_dir() and target.is_dir():
            _merge(entry, target)
        else:
            if target.is_dir():
                shutil.rmtree(target)
            os.replace(entry, target)


def split_recording(path: Path, out_dir: Path) -> list[Path]:
    """Cut a 60-s recording into ``<stem>_44100_1.wav`` (first 30 s) and ``_44100_2.wav`` (the rest) at
    44.1 kHz, 16-bit, as ARAUS's ``split_usotw_track``; halves already there are kept.

    Raises:
        DownloadError: an unreadable recording (one line naming it and the fix).
    """
    import librosa
    import soundfile as sf

    halves = [out_dir / f"{path.stem}_{SPLIT_RATE}_{k}.wav" for k in (1, 2)]
    if all(h.is_file() for h in halves):
        return halves
    try:
        x, rate = librosa.load(str(path), sr=SPLIT_RATE, mono=False)
    except Exception as err:  # noqa: BLE001 - audioread/soundfile raise many kinds; one line either way
        raise DownloadError(f"{path}: cannot be read ({str(err).splitlines()[0] if str(err) else type(err).__name__}); "
                            "fix: delete it and run the same command again") from None
    x = x.reshape(-1, x.shape[-1])
    cut = SPLIT_RATE * HALF_SECONDS
    out_dir.mkdir(parents=True, exist_ok=True)
    for half, part in zip(halves, (x[:, :cut], x[:, cut:])):
        with atomic_path(half) as tmp:
            sf.write(str(tmp), part.T, rate, format="WAV", subtype="PCM_16")
    return halves


def download_araus(dest: Path | str, base: str | None = None, *, progress: bool = True,
                   timeout: float = 60.0, items: list[Item] | None = None) -> list[FetchResult]:
    """Fetch, verify, unpack and split ARAUS's download into ``dest`` (see the module docstring).

    Args:
        dest: the ARAUS folder to make (``soundscapes/``, ``maskers/``, ``data/``, ...).
        base: a mirror (``http(s)://``/``file://`` URL or a folder holding the files by name), or None
            for ARAUS's own hosts.
        progress: show a progress bar per file.
        timeout: seconds to wait for a server (a stalled transfer keeps its part file for the next run).
        items: the files (default :func:`manifest`; tests pass their own small archives).

    Returns:
        One :class:`FetchResult` per file.

    Raises:
        DownloadError: a file that does not verify (nothing kept of it; the others are in place), an
            archive that cannot be unpacked; EnvironmentFault: a full or read-only disk (one line each).
    """
    root = output_folder(dest, "--to", DownloadError)
    items = manifest() if items is None else items
    results: list[FetchResult] = []
    for folder in (ARCHIVE_DIR, RAW_DIR):
        group = [it for it in items if it.folder == folder]
        origins = sorted({it.base for it in group}) if base is None else [base]
        for origin in origins:
            specs = [it.spec for it in group if base is not None or it.base == origin]
            if specs:
                results += fetch_files(specs, root / folder, origin, option="--base-url", progress=progress,
                                       timeout=timeout, title=f"ARAUS {folder}", dest_option="--to",
                                       release="ARAUS download (ntudsp/araus-dataset-baseline-models manifest)")
    for it in items:
        if it.folder == ARCHIVE_DIR and it.spec.name.endswith(".zip"):
            _unpack(root / ARCHIVE_DIR / it.spec.name, root)
    v2 = root / "maskersv2"
    if v2.is_dir():
        (root / "maskers").mkdir(exist_ok=True)
        for wav in sorted(v2.glob("*.wav")):
            os.replace(wav, root / "maskers" / wav.name)
        shutil.rmtree(v2)
    raw = root / RAW_DIR
    binaural = root / "binaural"
    if binaural.is_dir():
        raw.mkdir(exist_ok=True)
        for wav in sorted(binaural.glob("*.wav")):
            split_recording(wav, root / "soundscapes")
            os.replace(wav, raw / wav.name)
        shutil.rmtree(binaural)
    for wav in sorted(raw.glob("*.wav")) if raw.is_dir() else []:
        split_recording(wav, root / "soundscapes")
    return results
